"""The suite: what runs (suite), how it runs (runner, executors), where results go (store)."""

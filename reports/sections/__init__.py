"""A task's own report section: ``reports/sections/<task>.py`` defines
``section(task, df, curves) -> dict`` (see `reports.html.base_section` for the keys);
a task without one gets the base section."""

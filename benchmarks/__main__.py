"""``python -m benchmarks``: the exit status is the work's, and never 0 when the output
could not be written (a reader that left, a full disk): a gate that pipes a command into
``head`` or ``tee`` cannot pass a failure."""
import os
import sys

# TensorFlow's C++ start-up lines (absl's "All log messages before absl::InitializeLog()",
# CPU feature and oneDNN notices) are not the command's output; a user who sets the
# variable sees them. Set before anything imports TensorFlow.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from benchmarks.cli import main  # noqa: E402


class _Stdout:
    """sys.stdout, remembering the first error writing it, so that this error is told from
    any other OSError the command raises."""

    def __init__(self, stream):
        self._stream, self.error = stream, None

    def write(self, text):
        try:
            return self._stream.write(text)
        except OSError as err:
            self.error = self.error or err
            raise

    def flush(self):
        try:
            self._stream.flush()
        except OSError as err:
            self.error = self.error or err
            raise

    def __getattr__(self, name):
        return getattr(self._stream, name)


def _entry() -> int:
    out = sys.stdout = _Stdout(sys.stdout)
    try:
        code = main()
        out.flush()
    except OSError:
        if out.error is None:
            raise
        code = 1  # the work was cut short by its output: never success
    if out.error is None:
        return code
    os.dup2(os.open(os.devnull, os.O_WRONLY), out.fileno())  # no second error at exit
    try:
        print(f"python -m benchmarks: error: cannot write to standard output "
              f"({out.error.strerror or out.error}); exit status {max(code, 1)}",
              file=sys.stderr)
    except OSError:
        pass
    return max(code, 1)


if __name__ == "__main__":  # spawned worker processes import this module without running it
    sys.exit(_entry())

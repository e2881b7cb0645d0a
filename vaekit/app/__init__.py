"""What the commands do: the Python API, the workflows on a run directory, the CLI and its options."""

"""The protocol pipeline: run directory, the context handed to strategy hooks, and the runner."""

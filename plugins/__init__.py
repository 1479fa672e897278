"""cotgap's built-in strategies. Each module here is an ordinary pluggy plugin, registered by
module name exactly as a third-party plugin's entry point would be."""

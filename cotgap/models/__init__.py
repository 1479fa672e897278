"""Models: the embedded zoo (real small models shipped inside PyPI packages) and model resolution."""

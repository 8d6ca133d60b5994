"""Weight interoperability: converters between reslab models and other libraries' weights."""

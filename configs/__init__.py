"""Shipped YAML configs (installed as the package ``xmarl._configs``)."""

"""Third-party dependency layers, built from the function catalog's ``LAYERS`` (see ``build``)."""

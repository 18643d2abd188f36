"""Data sets as Lightning data modules with one batch format (``image``, ``target``, ``index``)."""

"""The ``taskplane`` command line: thin commands over the library."""

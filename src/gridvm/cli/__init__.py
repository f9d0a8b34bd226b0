"""The ``gridvm`` command line for users and admins, over the SDK (``gridvm.client``).

``app`` (in ``gridvm.cli.app``) is the root; ``gridvm.main`` adds the daemons.
"""

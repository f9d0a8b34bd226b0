"""Debian images: the ``debian-12-minimal`` template and recipe builds, with mmdebstrap."""

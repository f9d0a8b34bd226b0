"""HEPiX image lists: the JSON document, its S/MIME signature, a site endorser."""

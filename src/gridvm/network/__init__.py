"""Host networking for VMs: zone bridges, taps and the agent's nftables tables.

- :mod:`whitelist`: parse and validate egress entries (pure).
- :mod:`addresses`: per-host, per-zone addresses and the VM's MAC (pure).
- :mod:`ruleset`: a host's network state as data, rendered to one atomic nft script (pure).
- :mod:`nft`: check, apply, read back and remove the rule set with ``nft`` (I/O).

Not wired into the agent yet: VMs still use QEMU user-mode networking.
"""

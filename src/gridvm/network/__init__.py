"""Host networking for VMs: zone bridges, taps and the agent's nftables tables.

- :mod:`whitelist`: parse and validate egress entries (pure).
- :mod:`addresses`: per-host, per-zone addresses and the VM's MAC (pure).
- :mod:`ruleset`: a host's network state as data, rendered to one atomic nft script (pure).
- :mod:`nft`: check, apply, read back and remove the rule set with ``nft`` (I/O).
- :mod:`links`: zone bridges and VM taps with the ``ip`` command (I/O).

Used by the agent with ``gridvm agent --network site`` (see :mod:`gridvm.agent.network`).
"""

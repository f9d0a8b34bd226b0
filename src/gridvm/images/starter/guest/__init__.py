"""Guest-side files of the tiny image (shell scripts run inside the VM, not Python)."""

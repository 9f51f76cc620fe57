"""The untrusted side: the runner that imports a submission, its probes, the wire format, and the jail."""

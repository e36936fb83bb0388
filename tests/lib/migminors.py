"""/proc/driver/nvidia-caps/mig-minors as the NVIDIA driver writes it, for simulated nodes (the bench and
tests/compat): a device minor per MIG capability, 15 GPU instances of 8 compute instances per GPU."""


def mig_minors(gpus):
    """The file's text for that many GPUs."""
    lines, minor = ["config 1", "monitor 2"], 3
    for g in range(gpus):
        for gi in range(15):
            lines.append(f"gpu{g}/gi{gi}/access {minor}")
            minor += 1
            for ci in range(8):
                lines.append(f"gpu{g}/gi{gi}/ci{ci}/access {minor}")
                minor += 1
    return "\n".join(lines) + "\n"

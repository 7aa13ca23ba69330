"""Run-time logic shared by the backends that run shards (local, Slurm, Kubernetes)."""

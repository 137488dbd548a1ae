"""The only modules that write to the Kubernetes API: workloads, builds, our own status."""

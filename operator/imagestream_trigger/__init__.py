"""imagestream-trigger: follow OpenShift ImageStream tags into workloads and builds."""

__version__ = "0.1.0"

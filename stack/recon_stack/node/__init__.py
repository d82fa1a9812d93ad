"""The process node: a small kubelet stand-in that runs pods as local processes.

There is no container runtime on the machines this project targets, so the local stack's
only Node is this agent. It registers the Node and keeps its Lease fresh, so the real
scheduler places pods on it and checks their GPU requests; runs each bound pod's containers
as processes with the pod's env and a kubeconfig for the pod's ServiceAccount, so RBAC is
real; and reports pod status and exit codes through the API as a kubelet does, so Job
controllers and pod failure policies behave as on a real cluster. `kubectl logs` works.

What a process cannot be given, it is not: there is no filesystem isolation (only
emptyDir volumes exist, as per-pod directories, and only env values, arguments and working
directories that name a mount path are rewritten into them, not paths inside scripts);
no resource limits; no user switching (securityContext is ignored); no probes (a running
container is ready); no exec or port-forward; GPUs are shared, not partitioned.
Restart policies OnFailure and Always restart the process with a short back-off; init
containers run in order before the others.
"""

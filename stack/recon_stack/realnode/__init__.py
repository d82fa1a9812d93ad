"""The real node of the local stack: kubelet, containerd and runc, kube-proxy and a CNI
bridge, inside a network namespace and a mount namespace that the stack creates.

`addresses` holds the fixed addresses inside the namespace, `configs` the pure
configuration files, `host` the edge that creates and removes namespaces, mounts, cgroups
and sysctls, `bridge` the forwarder between the host's loopback and the namespace, and
`node` the start and stop of the node's processes.
"""

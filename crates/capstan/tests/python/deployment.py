"""Drives capstan with the official Python client: create a Deployment, patch it with a
strategic merge patch, scale it through the scale subresource, and print what came back."""

import json
import sys

from kubernetes import client, config

config.load_kube_config(config_file=sys.argv[1])
apps = client.AppsV1Api()
deployment = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "py"},
    "spec": {
        "replicas": 1,
        "selector": {"matchLabels": {"app": "py"}},
        "template": {
            "metadata": {"labels": {"app": "py"}},
            "spec": {
                "containers": [
                    {"name": "web", "image": "nginx:1.25", "env": [{"name": "A", "value": "1"}]},
                    {"name": "side", "image": "busybox:1.36"},
                ]
            },
        },
    },
}
created = apps.create_namespaced_deployment("default", deployment)
# A dict body is sent as a strategic merge patch: containers merge by name.
patched = apps.patch_namespaced_deployment(
    "py",
    "default",
    {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.26"}]}}}},
)
scaled = apps.patch_namespaced_deployment_scale("py", "default", {"spec": {"replicas": 3}})
final = apps.read_namespaced_deployment("py", "default")
containers = {c.name: c.image for c in final.spec.template.spec.containers}
print(
    json.dumps(
        {
            "created_uid": created.metadata.uid,
            "patched_generation": patched.metadata.generation,
            "scale_kind": scaled.kind,
            "replicas": final.spec.replicas,
            "containers": containers,
            "env": [e.name for e in final.spec.template.spec.containers[0].env or []],
        }
    )
)

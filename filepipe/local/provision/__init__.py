"""Provisioning the transformed template into the local runtime's moto, one handler per resource type.

``stack`` is what provisioning produces, ``context`` what every handler receives, ``registry`` which handler
creates each resource type (each lives in its service's ``resources`` module under
``filepipe.local.services``), and ``provisioner`` runs them all: ``provision()``.
"""

"""odoo-pulumi's pure library: the domain (settings, sizing, instance types) and what lands
on the server (templating, server files, steps, backup), plus the operator tools
(acceptance, load test). No Pulumi import here: tests/test_layout.py enforces it."""

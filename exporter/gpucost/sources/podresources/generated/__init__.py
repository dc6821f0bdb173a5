"""Code generated from ../api.proto by regenerate.py; do not edit."""

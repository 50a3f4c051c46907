"""Tests of the Graph API sandbox (meta_sandbox)."""

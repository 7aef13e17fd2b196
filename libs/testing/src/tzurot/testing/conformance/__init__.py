"""The conformance suite's helpers: where the service under test is, and its reference rules.

tests/conformance holds behaviour tests of each service's contract that talk to it only over
gRPC with mTLS, so they run against any implementation (`make conformance SERVICE=keyvault
ADDR=host:port PKI=dir`). Without an address they run against the Python services.
"""

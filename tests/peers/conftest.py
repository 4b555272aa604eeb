"""The optional peer tier (docs/testing.md): nhw's NIR files in the real peer libraries
and theirs in nhw.  Every module here starts with :func:`_peerlib.require`, so the main
suite, which has no torch, reports these tests as skipped with the install command."""

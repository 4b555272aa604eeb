"""Exchanging networks with the field through NIR (the Neuromorphic Intermediate Representation).

- :mod:`.export` — a built nengo network as a NIR graph (:func:`export_nir`)
- :mod:`.importer` — a NIR graph as a nengo network (:func:`import_nir`, :func:`read_graph`)
- :mod:`.files` — NIR files on disk and the configs that run them (:func:`write_nir`,
  :func:`import_to_config`)

Importing this package imports neither ``nir`` nor h5py; the modules do.
"""

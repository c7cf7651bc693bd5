"""Run by the mkdocs ``gen-files`` plugin: writes the generated pages into the build (see ``gen_ref.py``)."""
import importlib.util
import os

import mkdocs_gen_files

_spec = importlib.util.spec_from_file_location("gen_ref", os.path.join(os.path.dirname(os.path.abspath(__file__)), "gen_ref.py"))
gen_ref = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gen_ref)
gen_ref.generate(mkdocs_gen_files.open)

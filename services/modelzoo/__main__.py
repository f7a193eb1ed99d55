from kernel.server import run_main
from services.modelzoo.app import start
from services.modelzoo.settings import ModelZooSettings

run_main("modelzoo", start, ModelZooSettings)

from kernel.server import run_main
from services.dataset.app import start
from services.dataset.settings import DatasetSettings

run_main("dataset", start, DatasetSettings)

from kernel.server import run_main
from services.inference.app import start
from services.inference.settings import InferenceSettings

run_main("inference", start, InferenceSettings)

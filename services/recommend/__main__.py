from kernel.server import run_main
from services.recommend.app import start

run_main("recommend", start)

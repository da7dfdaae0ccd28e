"""Stage prepare_data: a dataset's published files -> compact arrays + manifest.json."""

from npdraw.cli import main, stage_parser
from npdraw.config import ParamsError, load_params
from npdraw.data.prepare import prepare


def run() -> None:
    p = stage_parser(__doc__, run=False)
    p.add_argument("--out", required=True, help="output folder, e.g. data/prepared/mnist")
    p.add_argument("--offline", action="store_true", help="never download; fail if files are missing")
    args = p.parse_args()
    params = load_params(args.params)
    dataset = args.dataset or params["dataset"]
    if dataset not in params["datasets"]:
        raise ParamsError(f"dataset {dataset!r}: expected one of {sorted(params['datasets'])}")
    prepare(dataset, params["datasets"][dataset], args.out, allow_download=not args.offline)


if __name__ == "__main__":
    main(run)

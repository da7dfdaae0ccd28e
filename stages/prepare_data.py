"""Stage prepare_data: a dataset's published files -> compact arrays + manifest.json."""

from npdraw.data.prepare import prepare
from npdraw.workflow.cli import main, run_config, stage_parser
from npdraw.workflow.resolve import resolved_value


def run() -> None:
    p = stage_parser("prepare_data", __doc__)
    p.add_argument("--offline", action="store_true", help="never download; fail if files are missing")
    args = p.parse_args()
    cfg = run_config(args)
    prepare(cfg.dataset, resolved_value(cfg, "datasets"), args.out, allow_download=not args.offline)


if __name__ == "__main__":
    main(run)

/* Command line: -c, -t, -s, -v; load the configuration, hand over to the master. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "master.h"

#define DEFAULT_CONFIG SYSCONFDIR "/feedd.conf"

static void
usage(FILE *out)
{
	fprintf(out, "usage: feedd [-c FILE] [-t] [-s reload|stop|quit|flush] [-v] [-h]\n"
	             "  -c FILE  configuration file (default " DEFAULT_CONFIG ")\n"
	             "  -t       test the configuration and exit\n"
	             "  -s SIG   signal the running master: reload, stop, quit, flush\n"
	             "  -v       print the version and exit\n"
	             "  -h       print this help and exit\n");
}

int
main(int argc, char **argv)
{
	const char *path = DEFAULT_CONFIG, *action = NULL;
	int test = 0, opt, rc;
	char err[512];
	config_t cfg;

	while ((opt = getopt(argc, argv, "c:ts:vh")) != -1) {
		switch (opt) {
		case 'c':
			path = optarg;
			break;
		case 't':
			test = 1;
			break;
		case 's':
			action = optarg;
			if (strcmp(action, "reload") != 0 && strcmp(action, "stop") != 0 &&
			    strcmp(action, "quit") != 0 && strcmp(action, "flush") != 0) {
				fprintf(stderr,
				        "feedd: invalid -s \"%s\": use reload, stop, quit or "
				        "flush\n",
				        action);
				return 1;
			}
			break;
		case 'v':
			printf("feedd %s\n", PACKAGE_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "feedd: unexpected argument \"%s\"\n", argv[optind]);
		usage(stderr);
		return 1;
	}

	if (config_load(path, &cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "feedd: %s\n", err);
		if (test)
			fprintf(stderr, "feedd: configuration file %s test failed\n", path);
		return 1;
	}
	if (test) {
		printf("feedd: configuration file %s test is successful\n", path);
		config_free(&cfg);
		return 0;
	}
	if (action != NULL) {
		rc = master_signal(&cfg, action);
		config_free(&cfg);
		return rc == 0 ? 0 : 1;
	}

	if (log_open(cfg.log_level, cfg.error_log, cfg.access_log) < 0) {
		config_free(&cfg);
		return 1;
	}
	log_set_role("master");
	rc = master_run(&cfg, path);
	log_close();
	return rc;
}

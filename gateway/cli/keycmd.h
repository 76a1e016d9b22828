/*
 * keycmd: `ollama-gateway key ...`, the command line that manages API keys
 * and the only writer of the keys file (DESIGN.md "Command line").
 *
 *   key create NAME [--models GLOB,...] [--rpm N] [--tpm N] [--max-inflight N]
 *                   [--expires YYYY-MM-DD] [--admin] [-c FILE]
 *   key list [--json] [-c FILE]
 *   key revoke|disable|enable ID [-c FILE]
 *   key init [NAME] [-c FILE]
 *
 * A secret is printed once, on stdout, followed by a newline, and nothing
 * else ever goes to stdout but `key list`'s table or JSON; every message goes
 * to stderr. A change is a read-modify-write of the whole file under an
 * exclusive flock(2) on "<keys_file>.lock", checked with the daemon's own
 * loader before keys_write_file() replaces the file atomically, so two
 * commands never lose each other's change and the daemon never sees a file
 * it would refuse.
 *
 * The command line's thread only; needs sodium_init() to have run.
 */
#ifndef GATEWAY_KEYCMD_H
#define GATEWAY_KEYCMD_H

/*
 * Run `key SUBCOMMAND ...`: argv[0] is "key", argv[1] the subcommand.
 * default_config is the configuration file when there is no -c FILE.
 * Returns the exit status: 0 done, 1 bad usage or a bad configuration or
 * keys file, 2 a runtime failure (I/O).
 */
int keycmd_main(int argc, char **argv, const char *default_config);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * strebm nsm: a Non/New Session Manager client (NSM API 1.x, announced as
 * 1.2). When the environment holds NSM_URL (osc.udp://HOST:PORT/), the
 * daemon announces itself to the session manager, waits for
 * /nsm/client/open before it registers with JACK, and saves when told to.
 *
 * Wire protocol (all from and to one UDP socket, as the API requires):
 *
 *   -> /nsm/server/announce s:app s:capabilities s:executable i:1 i:2 i:pid
 *   <- /reply "/nsm/server/announce" s:message s:manager_name s:capabilities
 *   <- /error "/nsm/server/announce" i:code s:message  (refused: see
 *                                                       strebm_nsm_wait_open)
 *   <- /nsm/client/open s:path s:display_name s:client_id
 *   -> /reply "/nsm/client/open" s:message | /error "/nsm/client/open" i:code s:message
 *   <- /nsm/client/save
 *   -> /reply "/nsm/client/save" s:message | /error "/nsm/client/save" i:code s:message
 *   <- /nsm/client/session_is_loaded   (no answer; ops->session_is_loaded)
 *   -> /nsm/client/message i:priority s:message   (strebm_nsm_message)
 *
 * Capabilities announced: ":message:" only. Not ":switch:" (the JACK
 * client and the model are built once, for one session; a second open
 * after a successful one is answered ERR_NOT_NOW), not ":dirty:" (the
 * model adapts all the time, so "unsaved changes" would always be true and
 * mean nothing), not ":optional-gui:" (there is none).
 *
 * Quit has no message: the session manager sends SIGTERM and the daemon
 * stops as for any SIGTERM (the main loop's signalfd). Nothing here.
 *
 * Session files: the open path is "<session dir>/<client_id>" and the
 * server creates nothing there. strebmd keeps one file, so it uses the
 * API's "path plus the native extension" strategy: the state file is
 * path + ".strebm" (strebm_nsm_state_path()). It sits in the session
 * directory, which exists, so the atomic write (a temporary file in the
 * same directory, then rename) needs no mkdir. A file of that name that
 * does not exist yet is a new session, not an error.
 *
 * Malformed messages from the server (wrong argument count or types,
 * relative or empty path, empty or over-long client id) are answered
 * /error with ERR_GENERAL and change nothing; replies (/reply, /error) that
 * are malformed are logged and ignored, never answered. Unknown paths and
 * bundles are ignored (debug log). Datagrams from anyone but the session
 * manager are dropped unparsed: the sender must have the manager's port and
 * its address, or both must be loopback addresses (a manager URL naming
 * the host, e.g. 127.0.1.1 on Debian, answers from 127.0.0.1).
 *
 * Socket and thread: the client owns one UDP socket (bound to port 0 on
 * loopback when the manager's address is loopback, else on every address
 * of its family, since a remote manager must reach it) and one thread that
 * polls it; liblo only builds and parses messages (no lo_server, so no
 * liblo thread, no socket of liblo's). The thread takes no signals. It never
 * touches the audio or worker threads: whatever the ops do, they do it on
 * this thread, and the API asks them to finish promptly (the manager waits
 * for each answer).
 *
 * Threads: create/destroy on the main thread; wait_open on one thread (the
 * main thread, before JACK opens); open_done, message and the getters from
 * any thread. The ops are called on the NSM thread only, one at a time.
 */
#ifndef STREBM_NSM_H
#define STREBM_NSM_H

#include <stdbool.h>
#include <stddef.h>

/** NSM API version sent in the announce. */
#define STREBM_NSM_API_MAJOR 1
#define STREBM_NSM_API_MINOR 2
/** The capability string sent in the announce. */
#define STREBM_NSM_CAPABILITIES ":message:"
/** Suffix of the state file inside the session (see above). */
#define STREBM_NSM_STATE_SUFFIX ".strebm"
/** Longest client id accepted (bytes, without the NUL): JACK's client name
 * limit (jack_client_name_size() is 64 with the NUL). */
#define STREBM_NSM_MAX_CLIENT_ID 63
/** Longest open path accepted (bytes, without the NUL), leaving room for
 * the suffix within PATH_MAX. */
#define STREBM_NSM_MAX_PATH 4000

/** Error codes of the NSM API (the integer sent in /error). */
enum strebm_nsm_error {
	STREBM_NSM_ERR_GENERAL = -1,
	STREBM_NSM_ERR_INCOMPATIBLE_API = -2,
	STREBM_NSM_ERR_BLACKLISTED = -3,
	STREBM_NSM_ERR_LAUNCH_FAILED = -4,
	STREBM_NSM_ERR_NO_SUCH_FILE = -5,
	STREBM_NSM_ERR_NO_SESSION_OPEN = -6,
	STREBM_NSM_ERR_UNSAVED_CHANGES = -7,
	STREBM_NSM_ERR_NOT_NOW = -8,
	STREBM_NSM_ERR_BAD_PROJECT = -9,
	STREBM_NSM_ERR_CREATE_FAILED = -10,
};

/** ops->open may return this: the answer is sent later by
 * strebm_nsm_open_done() (e.g. once JACK is up and the state is loaded). */
#define STREBM_NSM_DEFER 1

struct strebm_nsm_ops {
	/**
	 * /nsm/client/open: use client_id as the JACK client name and
	 * strebm_nsm_state_path(path) as the state file (load it when it
	 * exists). path is absolute; client_id is 1..STREBM_NSM_MAX_CLIENT_ID
	 * bytes. The strings live only during the call: copy them.
	 * @return 0 (answered "OK" now), STREBM_NSM_DEFER (answered by
	 * strebm_nsm_open_done()), or a negative errno with a one-line reason
	 * in err, answered /error with: -EINVAL, -EBADMSG, -EFBIG ->
	 * ERR_BAD_PROJECT (a corrupt or foreign state); -EACCES, -EPERM,
	 * -EROFS, -ENOSPC, -ENOENT, -ENOTDIR, -EEXIST, -ENAMETOOLONG ->
	 * ERR_CREATE_FAILED; -EAGAIN, -EBUSY, -ETIMEDOUT -> ERR_NOT_NOW;
	 * anything else -> ERR_GENERAL. Required. NSM thread.
	 */
	int (*open)(void *data, const char *path, const char *display_name,
		    const char *client_id, char *err, size_t errlen);
	/**
	 * /nsm/client/save: write the state file chosen at open. Synchronous.
	 * @return 0 ("OK"), or a negative errno with a reason in err, answered
	 * /error with ERR_NOT_NOW for -EAGAIN, -EBUSY, -ETIMEDOUT and
	 * ERR_GENERAL otherwise. Only called after a successful open (before
	 * that the module answers ERR_NO_SESSION_OPEN). Required. NSM thread.
	 */
	int (*save)(void *data, char *err, size_t errlen);
	/** /nsm/client/session_is_loaded (informational). Optional. NSM thread. */
	void (*session_is_loaded)(void *data);
	/** Log sink, syslog levels (3 error ... 7 debug). Optional. NSM thread,
	 * and the thread of create. */
	void (*log)(void *data, int level, const char *msg);
};

struct strebm_nsm;

/**
 * Whether session management is asked for: NSM_URL is set and is an
 * osc.udp://HOST:PORT/ URL (not resolved here). Any thread.
 */
bool strebm_nsm_wanted(void);

/**
 * Parse an NSM URL: osc.udp://HOST:PORT[/path], HOST a name, an IPv4
 * address or an IPv6 one in brackets, PORT 1..65535. host gets HOST
 * (without brackets). For tests and strebm_nsm_wanted(). Any thread.
 * @return 0, -EPROTONOSUPPORT for another OSC protocol (osc.tcp, osc.unix),
 * or -EINVAL, with a one-line reason in err.
 */
int strebm_nsm_parse_url(const char *url, char *host, size_t hostlen, int *port, char *err,
			 size_t errlen);

/**
 * Resolve nsm_url (NULL: getenv("NSM_URL")), open the socket, start the
 * thread and send the announce (app_name: the application name, which is
 * also the JACK client name the daemon uses outside NSM, e.g. "strebmd";
 * exe_name: argv[0]). ops (copied) and data must outlive the client.
 * Main thread.
 * @return the client, or NULL with a one-line reason in err (NSM_URL unset
 * or malformed, unresolvable host, socket errors, missing ops).
 */
struct strebm_nsm *strebm_nsm_create(const char *nsm_url, const char *app_name,
				     const char *exe_name, const struct strebm_nsm_ops *ops,
				     void *data, char *err, size_t errlen);

/** Stop the thread, close the socket, free; NULL is a no-op. A deferred
 * open still unanswered is answered ERR_GENERAL first. Main thread. */
void strebm_nsm_destroy(struct strebm_nsm *n);

/**
 * Wait until the first /nsm/client/open has been handled, at most
 * timeout_ms (negative: no limit). One waiter at a time.
 * @return 0 when ops->open accepted it (0 or STREBM_NSM_DEFER), the negative
 * errno ops->open returned when it refused it, -ECONNREFUSED when the
 * manager answered the announce with /error, -ETIMEDOUT, or -EINVAL for a
 * NULL n.
 */
int strebm_nsm_wait_open(struct strebm_nsm *n, int timeout_ms);

/**
 * Answer a deferred open: r 0 sends /reply "/nsm/client/open" with msg
 * (NULL: "OK"); a negative errno sends /error with the code mapped as for
 * ops->open and msg as the message. Ignored (returns -EALREADY) when no
 * open is waiting. Any thread.
 * @return 0, -EALREADY, or -EINVAL for a NULL n.
 */
int strebm_nsm_open_done(struct strebm_nsm *n, int r, const char *msg);

/**
 * Send /nsm/client/message i:priority s:msg (priority 0..3, 3 the most
 * important; clamped) for the manager to show. Best effort. Any thread.
 * @return 0, or a negative errno (-EINVAL for NULL arguments).
 */
int strebm_nsm_message(struct strebm_nsm *n, int priority, const char *msg);

/**
 * The state file for an open path: path + STREBM_NSM_STATE_SUFFIX.
 * @return 0, -EINVAL (NULL or empty path), or -ENAMETOOLONG. Any thread.
 */
int strebm_nsm_state_path(const char *path, char *out, size_t outlen);

/** Whether the manager acknowledged the announce. Any thread. */
bool strebm_nsm_announced(const struct strebm_nsm *n);

/** The local UDP port of the client's socket (tests). Any thread. */
int strebm_nsm_port(const struct strebm_nsm *n);

#endif

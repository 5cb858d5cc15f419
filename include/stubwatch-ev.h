/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * stubwatch-ev: host a stubwatch loop in a libev main loop.
 *
 * One ev_io watches the stubwatch loop's epoll fd; when it is readable the
 * glue calls sw_loop_dispatch(), which runs the stubs' callbacks (report,
 * exit, kill) and the tick callback.  Nothing else is needed from the host.
 *
 * It works in ev_default_loop() too, whose SIGCHLD handling reaps every
 * child with waitpid(-1): stubs are spawned with exit_signal 0, which keeps
 * them out of waitpid(-1), so their exit status still reaches the stub's
 * callback.
 *
 * Link with -lstubwatch-ev -lstubwatch -lev.
 */
#ifndef STUBWATCH_EV_H
#define STUBWATCH_EV_H

#include <ev.h>
#include <stubwatch.h>

#ifdef __cplusplus
extern "C" {
#endif

struct sw_ev;

/*
 * Start watching `loop` from `evloop`.  The ev_io is started at once and
 * keeps ev_run() alive while attached (ev_unref() semantics are the host's
 * business: sw_ev_watcher() gives the watcher).
 *
 * Errors: -EINVAL  NULL argument;
 *         -ECHILD  loop used in a child after fork;
 *         -ENOMEM.
 */
int sw_ev_attach(struct sw_loop *loop, struct ev_loop *evloop,
		 struct sw_ev **ret_glue);

/*
 * Stop watching and free the glue; the stubwatch loop and its stubs are left
 * as they are.  Accepts NULL; returns NULL.  Refused from inside one of the
 * loop's callbacks (returns the glue unchanged): detach after ev_run()
 * returns, or from another watcher's callback.
 */
struct sw_ev *sw_ev_detach(struct sw_ev *glue);

/*
 * The last error sw_loop_dispatch() returned inside the ev_io callback
 * (for example a negative value returned by a stub callback), then reset to
 * 0.  Errors: -EINVAL (NULL).  Returns 0 when there was none.
 */
int sw_ev_take_error(struct sw_ev *glue);

/* The ev_io watcher, e.g. to ev_unref() it or to change its priority. */
ev_io *sw_ev_watcher(struct sw_ev *glue);

#ifdef __cplusplus
}
#endif

#endif /* STUBWATCH_EV_H */

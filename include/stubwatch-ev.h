/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * stubwatch-ev: host a stubwatch loop in a libev main loop.
 *
 * One ev_io watches the stubwatch loop's epoll fd; when it is readable the
 * glue calls sw_loop_dispatch(), which runs the stubs' callbacks (report,
 * exit, kill) and the tick callback.  One ev_prepare (not counted as keeping
 * ev_run() alive) calls sw_loop_prepare() before libev blocks: a stub that
 * a callback resumed and that has answered by then is served at once,
 * without libev's poll or the loop's own.  Nothing else is needed from the
 * host.
 *
 *     sw_loop_new(NULL, &loop);
 *     sw_stub_spawn(loop, &so, &stub);        (in flight at once)
 *     sw_stub_set_callback(stub, on_event, ctx);
 *     sw_ev_attach(loop, EV_DEFAULT, &glue);
 *     ev_run(EV_DEFAULT, 0);                  (on_event resumes the stub)
 *     sw_ev_detach(glue);                     (before sw_loop_free)
 *     sw_loop_free(loop);
 *
 * It works in ev_default_loop() too, whose SIGCHLD handling reaps every
 * child with waitpid(-1): stubs are spawned with exit_signal 0, which keeps
 * them out of waitpid(-1), so their exit status still reaches the stub's
 * callback, and an ev_child watcher never sees a fn-mode stub.  An exec'd
 * stub is different: execve() resets its exit_signal to SIGCHLD, so libev
 * may reap it first and an ev_child(0) watcher sees it; stubwatch still
 * completes it, with the status its pidfd kept (Linux 6.15+; -1 before).
 *
 * Inside a callback that the glue runs (a stub's or the tick callback):
 *   sw_stub_resume(), sw_stub_continue(), sw_stub_kill(), sw_stub_free(),
 *   sw_stub_add_fd(), sw_stub_remove_fd() of any stub of the loop (the one
 *   whose callback runs included), sw_stub_spawn(): work;
 *   sw_loop_dispatch(), sw_stub_wait() (and so the wait of sw_stub_run()):
 *   -EBUSY (-ESRCH for a stub whose EXIT or KILL was delivered);
 *   sw_stub_detach(): -EBUSY;
 *   sw_loop_free(): refused, returns the loop;
 *   sw_ev_detach(): refused, returns the glue;
 *   ev_break(): fine; running the same ev loop again (a nested ev_run())
 *   is not supported.
 *
 * A callback's error (a negative return) does not stop the other
 * completions of that dispatch; the glue keeps the first error for
 * sw_ev_take_error().
 *
 * After fork(): sw_ev_attach() in the child returns -ECHILD; a glue attached
 * before the fork stops its ev_io in the child at the first dispatch, which
 * the child's copy of the loop refuses with -ECHILD (kept for
 * sw_ev_take_error()), instead of spinning on an epoll set the parent still
 * drives.  sw_ev_detach() frees it there as usual.
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
 * business: sw_ev_watcher() gives the watcher).  *ret_glue is left
 * untouched on failure.
 *
 * Errors: -EINVAL  NULL argument;
 *         -ECHILD  loop used in a child after fork;
 *         -ENOMEM.
 */
int sw_ev_attach(struct sw_loop *loop, struct ev_loop *evloop,
		 struct sw_ev **ret_glue);

/*
 * Stop watching and free the glue; the stubwatch loop and its stubs are left
 * as they are (a completion that arrives meanwhile waits for the next
 * dispatch or wait).  Detach before sw_loop_free(): libev must stop watching
 * an fd before it is closed.  Accepts NULL; returns NULL.  Refused from
 * inside one of the loop's callbacks run by this glue (returns the glue
 * unchanged): detach after ev_run() returns, or from another watcher's
 * callback.
 */
struct sw_ev *sw_ev_detach(struct sw_ev *glue);

/*
 * The last error sw_loop_dispatch() returned inside the glue (a negative
 * value returned by a stub or tick callback, or -ECHILD in a forked child),
 * then reset to 0.  Returns 0 when there was none.  Errors: -EINVAL (NULL).
 */
int sw_ev_take_error(struct sw_ev *glue);

/* The ev_io watcher, e.g. to ev_unref() it or to change its priority.
 * NULL for a NULL glue. */
ev_io *sw_ev_watcher(struct sw_ev *glue);

#ifdef __cplusplus
}
#endif

#endif /* STUBWATCH_EV_H */

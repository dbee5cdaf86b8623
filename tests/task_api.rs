//! rotki's async task API over real HTTP, and tasks spawned from other threads.
mod support;

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use futures_lite::FutureExt;
use robin::config::Features;
use robin::control::Controller;
use robin::notifier::{Limits, Notifier};
use robin::runtime::Spawner;
use robin::server;
use robin::tasks::{self, Outcome, SpawnOptions, TaskBridgeError, TaskManager, TasksHandle};
use serde_json::{Value, json};
use support::{eventually, http_get, http_raw, parse_response};

/// An HTTP listener with a task tracker on its own loop thread.
struct TaskLoop {
    addr: SocketAddr,
    tasks: TasksHandle,
    stop: async_channel::Sender<()>,
    thread: Option<thread::JoinHandle<()>>,
}

impl TaskLoop {
    /// Keeps at most `max_results` unfetched results.
    fn start(max_results: usize) -> TaskLoop {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = tcp.local_addr().unwrap();
        let (stop, stopped) = async_channel::bounded::<()>(1);
        let (handle_tx, handle_rx) = mpsc::channel();
        let thread = thread::spawn(move || {
            let ex = Spawner::new();
            let tasks = TaskManager::with_result_limits(
                ex.clone(),
                Rc::new(|_| {}),
                Rc::new(|_| {}),
                max_results,
                robin::tasks::MAX_KEPT_RESULT_BYTES,
            );
            let controller = Rc::new(Controller::new(
                Features::defaults(),
                Notifier::new(Limits::default()),
                tasks.clone(),
                robin::control::Session::new(tasks.clone()),
            ));
            let (handle, pump) = tasks::remote_channel(tasks);
            handle_tx.send(handle).unwrap();
            let server = server::Server::new(tcp, controller, server::Limits::default()).unwrap();
            let _pump = ex.spawn(pump);
            ex.block_on(server.serve().or(async {
                let _ = stopped.recv().await;
            }));
        });
        TaskLoop { addr, tasks: handle_rx.recv().unwrap(), stop, thread: Some(thread) }
    }

    fn api_task(
        &self,
        name: &str,
        future: impl std::future::Future<Output = Result<Value, tasks::RemoteError>> + Send + 'static,
    ) -> u64 {
        let options = SpawnOptions { keep_result: true, ..SpawnOptions::default() };
        self.tasks.spawn(name, options, future).unwrap().id().0
    }
}

impl Drop for TaskLoop {
    fn drop(&mut self) {
        let _ = self.stop.send_blocking(());
        let _ = self.thread.take().unwrap().join();
    }
}

fn delete(addr: SocketAddr, path: &str) -> (u16, Value) {
    parse_response(&http_raw(addr, format!("DELETE {path} HTTP/1.1\r\nConnection: close\r\n\r\n").as_bytes()))
}

/// A future that completes when the test thread says so.
fn gated(
    result: Result<Value, String>,
) -> (async_channel::Sender<()>, impl std::future::Future<Output = Result<Value, tasks::RemoteError>> + Send)
{
    let (open, gate) = async_channel::bounded::<()>(1);
    (open, async move {
        let _ = gate.recv().await;
        result.map_err(Into::into)
    })
}

#[test]
fn the_task_api_follows_rotkis_contract() {
    let server = TaskLoop::start(robin::tasks::MAX_KEPT_RESULTS);
    let (finish_ok, ok) = gated(Ok(json!({"eth": "1.5"})));
    let (finish_err, err) = gated(Err("node returned 502".into()));
    let ok_id = server.api_task("query_balances", ok);
    let err_id = server.api_task("query_prices", err);
    assert_eq!((ok_id, err_id), (0, 1), "task ids are sequential from 0");
    eventually("both tasks pending", || {
        http_get(server.addr, "/api/1/tasks").1["result"]["pending"] == json!([0, 1])
    });

    assert_eq!(
        http_get(server.addr, "/api/1/tasks/0"),
        (
            200,
            json!({"result": {"status": "pending", "outcome": null}, "message": "The task with id 0 is still pending"})
        )
    );

    finish_ok.send_blocking(()).unwrap();
    finish_err.send_blocking(()).unwrap();
    eventually("both completed", || {
        http_get(server.addr, "/api/1/tasks").1
            == json!({"result": {"pending": [], "completed": [0, 1]}, "message": ""})
    });
    assert_eq!(
        http_get(server.addr, "/api/1/tasks/0"),
        (
            200,
            json!({"result": {"status": "completed", "outcome": {"result": {"eth": "1.5"}, "message": ""}, "status_code": 200}, "message": ""})
        )
    );
    assert_eq!(
        http_get(server.addr, "/api/1/tasks/0"),
        (
            404,
            json!({"result": {"status": "not-found", "outcome": null}, "message": "No task with id 0 found"})
        ),
        "a result is read once"
    );
    assert_eq!(
        http_get(server.addr, "/api/1/tasks/1").1["result"]["outcome"],
        json!({"result": null, "message": "The backend query task died unexpectedly: node returned 502"})
    );
    assert_eq!(http_get(server.addr, "/api/1/tasks/77").1["message"], "No task with id 77 found");
}

#[test]
fn delete_cancels_or_says_it_could_not() {
    let server = TaskLoop::start(robin::tasks::MAX_KEPT_RESULTS);
    let (_never_opened, pending) = gated(Ok(Value::Null));
    let id = server.api_task("query_history", pending);
    eventually("the task is pending", || {
        http_get(server.addr, "/api/1/tasks").1["result"]["pending"] == json!([id])
    });
    assert_eq!(
        delete(server.addr, &format!("/api/1/tasks/{id}")),
        (200, json!({"result": true, "message": ""}))
    );
    assert_eq!(http_get(server.addr, "/api/1/tasks").1["result"], json!({"pending": [], "completed": []}));
    assert_eq!(
        delete(server.addr, "/api/1/tasks/9"),
        (
            404,
            json!({"result": null, "message": "Did not cancel task with id 9 because it could not be found"})
        )
    );
}

#[test]
fn unfetched_results_wait_for_a_sleeping_ui_bounded_by_number_not_by_a_clock() {
    let server = TaskLoop::start(2);
    let first = server.api_task("one", async { Ok(json!(1)) });
    eventually("completed", || {
        http_get(server.addr, "/api/1/tasks").1["result"]["completed"] == json!([first])
    });
    thread::sleep(Duration::from_millis(300)); // a UI that sleeps: nothing expires by age
    assert_eq!(http_get(server.addr, "/api/1/tasks").1["result"]["completed"], json!([first]));
    let (second, third) =
        (server.api_task("two", async { Ok(json!(2)) }), server.api_task("three", async { Ok(json!(3)) }));
    eventually("the newest two kept", || {
        http_get(server.addr, "/api/1/tasks").1["result"]["completed"] == json!([second, third])
    });
    let (status, body) = http_get(server.addr, &format!("/api/1/tasks/{first}"));
    assert_eq!(status, 404, "the oldest gave way");
    assert_eq!(
        body,
        json!({"result": {"status": "not-found", "outcome": null}, "message": format!("No task with id {first} found")})
    );
}

#[test]
fn eight_threads_spawn_and_wait_for_tasks() {
    let server = TaskLoop::start(robin::tasks::MAX_KEPT_RESULTS);
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let tasks = server.tasks.clone();
            thread::spawn(move || {
                let spawned: Vec<_> = (0..50)
                    .map(|i| {
                        tasks
                            .spawn(format!("thread{t}_{i}"), SpawnOptions::default(), async move {
                                Ok(json!([t, i]))
                            })
                            .unwrap()
                    })
                    .collect();
                spawned
                    .into_iter()
                    .enumerate()
                    .map(|(i, task)| {
                        assert_eq!(
                            task.wait_timeout(Duration::from_secs(10)).unwrap(),
                            Outcome::Completed(json!([t, i]))
                        );
                        task.id()
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut ids: Vec<u64> = threads.into_iter().flat_map(|t| t.join().unwrap()).map(|id| id.0).collect();
    ids.sort_unstable();
    assert_eq!(ids, (0..400).collect::<Vec<_>>(), "every number once");
}

#[test]
fn blocking_closures_run_on_the_pool_and_a_cancel_before_start_wins() {
    let server = TaskLoop::start(robin::tasks::MAX_KEPT_RESULTS);
    let task = server
        .tasks
        .spawn_blocking("sync_work", SpawnOptions::default(), || {
            assert!(!robin::runtime::on_loop_thread(), "not on the loop");
            Ok(json!("done"))
        })
        .unwrap();
    assert_eq!(task.wait_timeout(Duration::from_secs(10)).unwrap(), Outcome::Completed(json!("done")));

    let ran = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = ran.clone();
    let later = SpawnOptions { delay: Some(Duration::from_millis(300)), ..SpawnOptions::default() };
    let task = server
        .tasks
        .spawn_blocking("never_runs", later, move || {
            flag.store(true, std::sync::atomic::Ordering::SeqCst);
            Ok(Value::Null)
        })
        .unwrap();
    server.tasks.cancel(task.id()).unwrap();
    assert_eq!(task.wait_timeout(Duration::from_secs(10)).unwrap(), Outcome::Cancelled);
    thread::sleep(Duration::from_millis(500));
    assert!(!ran.load(std::sync::atomic::Ordering::SeqCst));
}

#[test]
fn waiting_on_the_loop_thread_is_an_error_not_a_deadlock() {
    let server = TaskLoop::start(robin::tasks::MAX_KEPT_RESULTS);
    let task = server.tasks.spawn("slow", SpawnOptions::default(), async { Ok(Value::Null) }).unwrap();
    let ex = Spawner::new();
    let result = ex.block_on(async { task.wait_timeout(Duration::from_secs(1)) });
    assert_eq!(result, Err(TaskBridgeError::OnLoopThread));
    assert_eq!(task.wait_timeout(Duration::from_secs(10)), Ok(Outcome::Completed(Value::Null)));
}

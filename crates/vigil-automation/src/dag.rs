//! A tenant's task dependencies form a DAG: a save that would close a cycle is refused with
//! the cycle spelled out in order, and a run executes a task's dependency closure in
//! topological order.

use std::collections::{BTreeMap, BTreeSet};

use crate::TaskRef;

/// Who depends on whom: each task and the tasks it depends on.
#[derive(Debug, Clone, Default)]
pub struct DependencyGraph {
    edges: BTreeMap<TaskRef, BTreeSet<TaskRef>>,
}

impl DependencyGraph {
    pub fn new(edges: impl IntoIterator<Item = (TaskRef, TaskRef)>) -> Self {
        let mut graph = Self::default();
        for (from, to) in edges {
            graph.edges.entry(from).or_default().insert(to);
        }
        graph
    }

    /// The graph with `task`'s dependencies replaced by `depends_on`.
    pub fn with_task(
        mut self,
        task: TaskRef,
        depends_on: impl IntoIterator<Item = TaskRef>,
    ) -> Self {
        self.edges.insert(task, depends_on.into_iter().collect());
        self
    }

    /// The tasks that depend on `task` directly, by name.
    pub fn dependants(&self, task: &TaskRef) -> Vec<TaskRef> {
        self.edges
            .iter()
            .filter(|(from, to)| *from != task && to.contains(task))
            .map(|(from, _)| from.clone())
            .collect()
    }

    /// `task` and everything it depends on, dependencies first (each after all of its own
    /// dependencies); `None` on a cycle.
    pub fn closure_in_order(&self, task: &TaskRef) -> Option<Vec<TaskRef>> {
        let mut order = Vec::new();
        let mut done = BTreeSet::new();
        let mut on_path = BTreeSet::new();
        self.visit(task, &mut done, &mut on_path, &mut order)
            .then_some(order)
    }

    fn visit(
        &self,
        task: &TaskRef,
        done: &mut BTreeSet<TaskRef>,
        on_path: &mut BTreeSet<TaskRef>,
        order: &mut Vec<TaskRef>,
    ) -> bool {
        if done.contains(task) {
            return true;
        }
        if !on_path.insert(task.clone()) {
            return false;
        }
        for dep in self.edges.get(task).into_iter().flatten() {
            if !self.visit(dep, done, on_path, order) {
                return false;
            }
        }
        on_path.remove(task);
        done.insert(task.clone());
        order.push(task.clone());
        true
    }
}

/// A cycle of `graph`, if it has one: the tasks in dependency order with the first repeated
/// at the end (`a → b → c → a` means a depends on b, b on c, c on a).
pub fn find_cycle(graph: &DependencyGraph) -> Option<Vec<TaskRef>> {
    // Kahn: peel off every task nothing left depends on; what remains holds a cycle.
    let mut indegree: BTreeMap<&TaskRef, usize> = BTreeMap::new();
    for (from, tos) in &graph.edges {
        indegree.entry(from).or_insert(0);
        for to in tos {
            *indegree.entry(to).or_insert(0) += 1;
        }
    }
    let mut ready: Vec<&TaskRef> = indegree
        .iter()
        .filter(|(_, n)| **n == 0)
        .map(|(task, _)| *task)
        .collect();
    while let Some(task) = ready.pop() {
        indegree.remove(task);
        for to in graph.edges.get(task).into_iter().flatten() {
            if let Some(n) = indegree.get_mut(to) {
                *n -= 1;
                if *n == 0 {
                    ready.push(to);
                }
            }
        }
    }
    // Every task left still has a dependant left (its indegree never reached zero), so
    // walking from dependant to dependant inside the remainder must repeat a task.
    let left: BTreeSet<&TaskRef> = indegree.keys().copied().collect();
    let start = *left.iter().next()?;
    let mut path = vec![start];
    let mut at = start;
    loop {
        let dependant = left
            .iter()
            .copied()
            .find(|from| graph.edges.get(*from).is_some_and(|tos| tos.contains(at)))?;
        if let Some(pos) = path.iter().position(|seen| *seen == dependant) {
            // path[pos..] runs against the edges; reversed it follows them, and the last
            // task (the first reversed) closes the cycle.
            let mut cycle: Vec<TaskRef> = path[pos..].iter().rev().map(|t| (*t).clone()).collect();
            cycle.push(cycle[0].clone());
            return Some(cycle);
        }
        path.push(dependant);
        at = dependant;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AppName, TaskName};

    fn t(name: &str) -> TaskRef {
        let (app, task) = name.split_once('/').unwrap();
        TaskRef::new(AppName::parse(app).unwrap(), TaskName::parse(task).unwrap())
    }

    fn names(tasks: &[TaskRef]) -> Vec<String> {
        tasks.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn a_cycle_is_named_in_order_and_a_dag_has_none() {
        let dag = DependencyGraph::new([(t("a/x"), t("a/y")), (t("a/y"), t("b/z"))]);
        assert_eq!(find_cycle(&dag), None);
        assert_eq!(
            names(&dag.closure_in_order(&t("a/x")).unwrap()),
            ["b/z", "a/y", "a/x"]
        );
        assert_eq!(names(&dag.dependants(&t("a/y"))), ["a/x"]);
        let cyclic = dag.with_task(t("b/z"), [t("a/x")]);
        let cycle = names(&find_cycle(&cyclic).unwrap());
        assert_eq!(cycle.len(), 4, "{cycle:?}");
        assert_eq!(cycle.first(), cycle.last());
        assert!(cycle.windows(2).all(|w| {
            let (from, to) = (t(&w[0]), t(&w[1]));
            cyclic.edges[&from].contains(&to)
        }));
        assert_eq!(cyclic.closure_in_order(&t("a/x")), None);
        let self_loop = DependencyGraph::new([(t("a/x"), t("a/x"))]);
        assert_eq!(names(&find_cycle(&self_loop).unwrap()), ["a/x", "a/x"]);
    }

    #[test]
    fn a_diamond_runs_each_task_once() {
        let dag = DependencyGraph::new([
            (t("a/top"), t("a/left")),
            (t("a/top"), t("a/right")),
            (t("a/left"), t("a/base")),
            (t("a/right"), t("a/base")),
        ]);
        let order = names(&dag.closure_in_order(&t("a/top")).unwrap());
        assert_eq!(order.len(), 4);
        assert_eq!(order[0], "a/base");
        assert_eq!(order[3], "a/top");
    }
}

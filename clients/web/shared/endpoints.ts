// Where the web clients reach the server (the same origin serves the apps and the API). Free
// of imports, so that any bundle (the GraphiQL page too) can use it cheaply.

/** The GraphQL websocket (graphql-transport-ws) of the page's own origin. */
export function socketUrl(location: Pick<Location, 'protocol' | 'host'>): string {
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/graphql`
}

/** The CRDT websocket of a field document (``inspection/12``), with the OneWindow
 * acknowledgements asked for; the token goes in a subprotocol, never in the URL. */
export function syncUrl(location: Pick<Location, 'protocol' | 'host'>, doc: string): string {
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/sync/${doc}?ack=1`
}

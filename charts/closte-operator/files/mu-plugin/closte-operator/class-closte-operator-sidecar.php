<?php
/**
 * The sidecar's two doors, over a replaceable HTTP transport.
 *
 * @package Closte_Operator
 */

defined( 'ABSPATH' ) || exit;

/**
 * One answer from the sidecar, or the failure to get one (status 0).
 */
final class Closte_Operator_Result {

	/**
	 * Constructor.
	 *
	 * @param int    $status    HTTP status; 0 when no answer came back.
	 * @param string $body      Response body.
	 * @param string $error     Transport error, when $status is 0.
	 * @param bool   $timed_out The request was sent (the sidecar took the connection) but its answer did not come in time.
	 */
	public function __construct(
		public readonly int $status,
		public readonly string $body = '',
		public readonly string $error = '',
		public readonly bool $timed_out = false
	) {}

	/**
	 * A transport failure: refused, blocked, not sent.
	 *
	 * @param string $error What went wrong.
	 * @return self
	 */
	public static function unreachable( string $error ): self {
		return new self( 0, '', $error );
	}

	/**
	 * No answer in time from a sidecar that took the request: it is slow (a
	 * large site set, a busy API server), not down, so the breaker stays shut.
	 *
	 * @param string $error What went wrong.
	 * @return self
	 */
	public static function timed_out( string $error ): self {
		return new self( 0, '', $error, true );
	}

	/**
	 * Whether an HTTP answer came back.
	 *
	 * @return bool
	 */
	public function reached(): bool {
		return $this->status > 0;
	}

	/**
	 * Whether the answer is a 2xx.
	 *
	 * @return bool
	 */
	public function ok(): bool {
		return $this->status >= 200 && $this->status < 300;
	}

	/**
	 * Whether trying again later can succeed: no answer, a refused token (a
	 * person fixes it), a timeout, a conflict (the domain is still being
	 * deleted, or held by another site until that site lets it go), a rate
	 * limit or a server error (the API server unreachable). Anything else
	 * (400 invalid domain, 404) will be answered the same way again.
	 *
	 * @return bool
	 */
	public function retryable(): bool {
		if ( $this->ok() ) {
			return false;
		}
		return 0 === $this->status || $this->status >= 500 || in_array( $this->status, array( 401, 403, 408, 409, 425, 429 ), true );
	}

	/**
	 * The body as a JSON object, or null.
	 *
	 * @return array<string, mixed>|null
	 */
	public function json(): ?array {
		$data = json_decode( $this->body, true );
		return is_array( $data ) ? $data : null;
	}

	/**
	 * A one-line description for people: the transport error, the answer's
	 * `error` field, or the status.
	 *
	 * @return string
	 */
	public function message(): string {
		if ( $this->timed_out ) {
			return 'no answer from the sidecar in time: ' . $this->error;
		}
		if ( ! $this->reached() ) {
			return 'sidecar unreachable: ' . $this->error;
		}
		$json = $this->json();
		if ( is_array( $json ) && isset( $json['error'] ) && is_string( $json['error'] ) && '' !== $json['error'] ) {
			return sprintf( 'HTTP %d: %s', $this->status, $json['error'] );
		}
		return sprintf( 'HTTP %d', $this->status );
	}
}

/**
 * How requests reach the sidecar; WordPress's HTTP API in production, a fake
 * in the unit tests.
 */
interface Closte_Operator_Transport {

	/**
	 * Sends one request.
	 *
	 * @param string                $method  HTTP method.
	 * @param string                $url     Full URL.
	 * @param array<string, string> $headers Request headers.
	 * @param string|null           $body    Request body.
	 * @param float                 $timeout Seconds, connection included.
	 * @return Closte_Operator_Result
	 */
	public function request( string $method, string $url, array $headers, ?string $body, float $timeout ): Closte_Operator_Result;
}

/**
 * The sidecar client: the native JSON door (Bearer token) and a raw request to
 * the Closte-compatible door.
 */
final class Closte_Operator_Sidecar {

	/** The header that gives a domain added through the Closte door its checkInterval. */
	const INTERVAL_HEADER = 'X-Closte-Operator-Check-Interval';

	/**
	 * Returns the DNS check interval in seconds for every MappedDomain
	 * written, or null for the sidecar's own default.
	 *
	 * @var Closure
	 */
	private Closure $interval;

	/**
	 * Constructor.
	 *
	 * @param Closte_Operator_Transport $transport HTTP transport.
	 * @param Closte_Operator_Config    $config    Where and how.
	 * @param callable|null             $interval  Returns the check interval in seconds, or null; read at each write.
	 */
	public function __construct(
		private Closte_Operator_Transport $transport,
		public readonly Closte_Operator_Config $config,
		?callable $interval = null
	) {
		$this->interval = Closure::fromCallable( $interval ?? fn() => null );
	}

	/**
	 * The check interval every write carries: "120s", or null for the sidecar's default.
	 *
	 * @return string|null
	 */
	public function check_interval(): ?string {
		$seconds = ( $this->interval )();
		return is_int( $seconds ) ? $seconds . 's' : null;
	}

	/**
	 * The full URL of a path on the sidecar.
	 *
	 * @param string $path Starts with '/'.
	 * @return string
	 */
	public function url( string $path ): string {
		return $this->config->url . $path;
	}

	/**
	 * GET /healthz (no token).
	 *
	 * @return Closte_Operator_Result
	 */
	public function health(): Closte_Operator_Result {
		return $this->send( 'GET', $this->url( '/healthz' ), array(), null, $this->config->timeout );
	}

	/**
	 * GET /v1/domains: every MappedDomain of the sidecar's namespace.
	 *
	 * @return Closte_Operator_Result
	 */
	public function domains(): Closte_Operator_Result {
		return $this->native( 'GET', '/v1/domains' );
	}

	/**
	 * PUT /v1/domains/{domain}, with the site id when known.
	 *
	 * @param string   $domain  Normalised domain.
	 * @param int|null $site_id Blog id.
	 * @return Closte_Operator_Result
	 */
	public function put_domain( string $domain, ?int $site_id ): Closte_Operator_Result {
		$body     = array();
		$interval = $this->check_interval();
		if ( null !== $site_id ) {
			$body['siteId'] = $site_id;
		}
		if ( null !== $interval ) {
			$body['checkInterval'] = $interval;
		}
		return $this->native( 'PUT', '/v1/domains/' . Closte_Operator_Domains::segment( $domain ), array() === $body ? null : $body, true );
	}

	/**
	 * DELETE /v1/domains/{domain}.
	 *
	 * @param string $domain Normalised domain.
	 * @return Closte_Operator_Result
	 */
	public function delete_domain( string $domain ): Closte_Operator_Result {
		return $this->native( 'DELETE', '/v1/domains/' . Closte_Operator_Domains::segment( $domain ), null, true );
	}

	/**
	 * PUT /v1/sites/{id}/domains: the whole set of one site.
	 *
	 * @param int                $site_id Blog id.
	 * @param array<int, string> $domains Normalised domains.
	 * @return Closte_Operator_Result
	 */
	public function put_site_domains( int $site_id, array $domains ): Closte_Operator_Result {
		$body     = array( 'domains' => array_values( $domains ) );
		$interval = $this->check_interval();
		if ( null !== $interval ) {
			$body['checkInterval'] = $interval;
		}
		return $this->native( 'PUT', '/v1/sites/' . $site_id . '/domains', $body, true );
	}

	/**
	 * A request to the Closte-compatible door, already carrying the token.
	 *
	 * @param string                $method   HTTP method.
	 * @param string                $endpoint Path under /api/client/, e.g. 'adddomainalias'.
	 * @param string                $query    Query string without '?', or ''.
	 * @param string|null           $body     Request body.
	 * @param array<string, string> $headers  Request headers.
	 * @param float                 $timeout  Seconds.
	 * @return Closte_Operator_Result
	 */
	public function closte( string $method, string $endpoint, string $query, ?string $body, array $headers, float $timeout ): Closte_Operator_Result {
		$url      = $this->url( '/api/client/' . ltrim( $endpoint, '/' ) ) . ( '' === $query ? '' : '?' . $query );
		$interval = $this->check_interval();
		if ( null !== $interval ) {
			$headers[ self::INTERVAL_HEADER ] = $interval;
		}
		return $this->scrub( $this->send( $method, $url, $headers, $body, $timeout ) );
	}

	/**
	 * One request through the transport, unless the sidecar URL may not carry
	 * the token (neither loopback nor https): then nothing is sent at all.
	 *
	 * @param string                $method  HTTP method.
	 * @param string                $url     Full URL.
	 * @param array<string, string> $headers Request headers.
	 * @param string|null           $body    Request body.
	 * @param float                 $timeout Seconds.
	 * @return Closte_Operator_Result
	 */
	private function send( string $method, string $url, array $headers, ?string $body, float $timeout ): Closte_Operator_Result {
		if ( '' !== $this->config->url_error ) {
			return Closte_Operator_Result::unreachable( 'not sent: ' . $this->config->url_error );
		}
		return $this->transport->request( $method, $url, $headers, $body, $timeout );
	}

	/**
	 * A transport error without the token: it is in the query of a GET to the
	 * Closte door, and transport errors may quote the URL. Errors end up in
	 * answers to callers, in the stored queue and on the screen.
	 *
	 * @param Closte_Operator_Result $result An answer or a failure.
	 * @return Closte_Operator_Result
	 */
	private function scrub( Closte_Operator_Result $result ): Closte_Operator_Result {
		$token = $this->config->token;
		if ( '' === $token || ( ! str_contains( $result->error, $token ) && ! str_contains( $result->error, rawurlencode( $token ) ) ) ) {
			return $result;
		}
		$error = str_replace( array( $token, rawurlencode( $token ) ), '[redacted]', $result->error );
		return new Closte_Operator_Result( $result->status, $result->body, $error, $result->timed_out );
	}

	/**
	 * One request to the native door.
	 *
	 * @param string     $method HTTP method.
	 * @param string     $path   Path.
	 * @param array|null $json   Body, sent as JSON.
	 * @param bool       $write  A write: it may wait on the API server, so it gets the longer write timeout.
	 * @return Closte_Operator_Result
	 */
	private function native( string $method, string $path, ?array $json = null, bool $write = false ): Closte_Operator_Result {
		$headers = array(
			'Authorization' => 'Bearer ' . $this->config->token,
			'Accept'        => 'application/json',
		);
		$body    = null;
		if ( null !== $json ) {
			$headers['Content-Type'] = 'application/json';
			$body                    = (string) json_encode( $json, JSON_UNESCAPED_SLASHES ); // phpcs:ignore WordPress.WP.AlternativeFunctions.json_encode_json_encode -- runs without WordPress in the unit tests.
		}
		$timeout = $write ? max( $this->config->timeout, $this->config->write_timeout ) : $this->config->timeout;
		return $this->scrub( $this->send( $method, $this->url( $path ), $headers, $body, $timeout ) );
	}
}

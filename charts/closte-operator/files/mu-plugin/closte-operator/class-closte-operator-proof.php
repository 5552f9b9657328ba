<?php
/**
 * The proof a mapped domain gives the controller that it reaches this
 * network: `GET /.well-known/closte-operator/NONCE` on a host of this network
 * answers an HMAC of the host and the nonce under the sidecar token, which
 * this WordPress and its sidecar share and the controller can read from the
 * namespace's Secret. Another network (another token) answers another HMAC;
 * a host this network does not serve, or a path that is no proof request,
 * gets 404 and nothing else.
 *
 * Answered while the mu-plugins load: after WordPress has found the site
 * for the host (the database reads every front-end request makes), before
 * plugins, the theme or the page.
 *
 * @package Closte_Operator
 */

defined( 'ABSPATH' ) || exit;

/**
 * The proof request's answer; pure, and the edge that sends it.
 */
final class Closte_Operator_Proof {

	/** The path every proof request starts with. */
	const PREFIX = '/.well-known/closte-operator/';

	/** Names the scheme, in the answer and in what is signed. */
	const SCHEME = 'closte-operator-proof-v1';

	/**
	 * The answer for HOST and NONCE under TOKEN; the controller computes the same.
	 *
	 * @param string $token The sidecar token.
	 * @param string $host  The request's host, without a port.
	 * @param string $nonce The nonce of the path.
	 * @return string
	 */
	public static function answer( string $token, string $host, string $nonce ): string {
		return self::SCHEME . ' ' . hash_hmac( 'sha256', self::SCHEME . "\n" . strtolower( $host ) . "\n" . $nonce, $token );
	}

	/**
	 * What to send for a request: null when it is no proof request (WordPress
	 * goes on), else array( status, body ).
	 *
	 * @param string $method     The request method.
	 * @param string $uri        REQUEST_URI.
	 * @param string $host       The host, without a port.
	 * @param string $token      The sidecar token ('' when it cannot be read).
	 * @param bool   $serves     Whether this network serves the host (a site's domain).
	 * @return array|null
	 */
	public static function respond( string $method, string $uri, string $host, string $token, bool $serves ): ?array {
		$path = (string) parse_url( $uri, PHP_URL_PATH ); // phpcs:ignore WordPress.WP.AlternativeFunctions.parse_url_parse_url -- no WordPress needed here.
		if ( 0 !== strpos( $path, self::PREFIX ) ) {
			return null;
		}
		$nonce = substr( $path, strlen( self::PREFIX ) );
		$fine  = in_array( $method, array( 'GET', 'HEAD' ), true )
			&& 1 === preg_match( '/^[A-Za-z0-9_-]{16,128}$/', $nonce )
			&& '' !== $token
			&& $serves;
		return $fine ? array( 200, self::answer( $token, $host, $nonce ) . "\n" ) : array( 404, "Not Found\n" );
	}

	/**
	 * Answers this request when it is a proof request, and ends it.
	 *
	 * @param Closte_Operator_Config $config The plugin's settings (the token).
	 * @return void
	 */
	public static function serve( Closte_Operator_Config $config ): void {
		$uri = isset( $_SERVER['REQUEST_URI'] ) ? (string) wp_unslash( $_SERVER['REQUEST_URI'] ) : '';
		if ( 0 !== strpos( $uri, self::PREFIX ) ) {
			return; // every other request pays one string comparison
		}
		$host   = strtolower( (string) preg_replace( '/:\d+$/', '', isset( $_SERVER['HTTP_HOST'] ) ? (string) wp_unslash( $_SERVER['HTTP_HOST'] ) : '' ) );
		$blog   = get_site();
		$serves = $blog instanceof WP_Site && strtolower( $blog->domain ) === $host;
		$method = isset( $_SERVER['REQUEST_METHOD'] ) ? strtoupper( (string) wp_unslash( $_SERVER['REQUEST_METHOD'] ) ) : 'GET';
		list( $status, $body ) = self::respond( $method, $uri, $host, $config->token, $serves );
		status_header( $status );
		header( 'Content-Type: text/plain; charset=utf-8' );
		header( 'Cache-Control: no-store, max-age=0' );
		header( 'X-Robots-Tag: noindex' );
		if ( 'HEAD' !== $method ) {
			echo $body; // phpcs:ignore WordPress.Security.EscapeOutput.OutputNotEscaped -- text/plain, hex digits
		}
		exit;
	}
}
